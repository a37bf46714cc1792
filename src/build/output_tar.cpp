#include "output_tar.hpp"

#include "output_file.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <unistd.h>
#include <vector>

namespace minibuild::build {

namespace {

constexpr std::size_t k_block = 512;
// ustar's numeric fields hold octal digits followed by a NUL; the size field has 11 digits.
constexpr std::uint64_t k_max_octal_size = 077777777777ULL;

// Writes `value` as zero-padded octal into field[0, width - 1) followed by NUL.
void put_octal(char* field, std::size_t width, std::uint64_t value) {
  for (std::size_t i = width - 1; i-- > 0;) {
    field[i] = static_cast<char>('0' + (value & 7U));
    value >>= 3U;
  }
  field[width - 1] = '\0';
}

// GNU base-256: the first byte has its high bit set, the rest is the big-endian value.
void put_base256(char* field, std::size_t width, std::uint64_t value) {
  std::memset(field, 0, width);
  for (std::size_t i = width; i-- > 1;) {
    field[i] = static_cast<char>(value & 0xffU);
    value >>= 8U;
  }
  field[0] = static_cast<char>(0x80);
}

} // namespace

std::string tar_header(std::string_view name, char type, std::uint64_t size, std::int64_t mtime) {
  std::string block(k_block, '\0');
  char* header = block.data();
  std::memcpy(header, name.data(), name.size());         // name[100]
  put_octal(header + 100, 8, type == '5' ? 0755 : 0644); // mode
  put_octal(header + 108, 8, 0);                         // uid
  put_octal(header + 116, 8, 0);                         // gid
  if (size <= k_max_octal_size) {
    put_octal(header + 124, 12, size);
  } else {
    put_base256(header + 124, 12, size);
  }
  put_octal(header + 136, 12, static_cast<std::uint64_t>(mtime < 0 ? 0 : mtime));
  header[156] = type;
  std::memcpy(header + 257, "ustar", 6); // magic "ustar\0"
  std::memcpy(header + 263, "00", 2);    // version
  put_octal(header + 329, 8, 0);         // devmajor
  put_octal(header + 337, 8, 0);         // devminor
  // The checksum is computed with the checksum field itself read as eight spaces.
  std::memset(header + 148, ' ', 8);
  unsigned sum = 0;
  for (char c : block) {
    sum += static_cast<unsigned char>(c);
  }
  put_octal(header + 148, 7, sum);
  header[155] = ' ';
  return block;
}

TarWriter::TarWriter(int fd, std::string display, std::int64_t mtime, bool seekable)
    : m_fd(fd), m_display(std::move(display)), m_mtime(mtime), m_seekable(seekable) {}

Result<void> TarWriter::write(std::string_view bytes) {
  MB_TRY(write_all(m_fd, {bytes.data(), bytes.size()}, m_display));
  m_offset += bytes.size();
  return {};
}

Result<void> TarWriter::write_header(std::string_view name, char type, std::uint64_t size,
                                     std::optional<std::uint64_t> at_offset) {
  if (m_finished) {
    return fail(Code::internal, "tar \"" + m_display + "\": entry added after the end");
  }
  if (name.empty() || name.size() > 99) {
    return fail(Code::internal, "tar entry name \"" + std::string(name) +
                                    "\" is empty or longer "
                                    "than a ustar name field");
  }
  std::string header = tar_header(name, type, size, m_mtime);
  if (!at_offset) {
    return write(header);
  }
  // Rewriting a header in place: pwrite leaves the file position where the data ended.
  std::size_t done = 0;
  while (done < header.size()) {
    ssize_t written = ::pwrite(m_fd, header.data() + done, header.size() - done,
                               static_cast<off_t>(*at_offset + done));
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno(errno, "write \"" + m_display + "\"");
    }
    done += static_cast<std::size_t>(written);
  }
  return {};
}

Result<void> TarWriter::pad(std::uint64_t size) {
  std::uint64_t rest = size % k_block;
  if (rest != 0) {
    MB_TRY(write(std::string(k_block - rest, '\0')));
  }
  return {};
}

Result<void> TarWriter::add_directory(std::string_view name) {
  return write_header(name, '5', 0);
}

Result<void> TarWriter::add_file(std::string_view name, std::string_view content) {
  MB_TRY(write_header(name, '0', content.size()));
  MB_TRY(write(content));
  return pad(content.size());
}

Result<std::uint64_t> TarWriter::add_stream(std::string_view name, oci::ByteSource& source,
                                            std::optional<std::uint64_t> size) {
  if (!size && !m_seekable) {
    return fail(Code::internal,
                "tar \"" + m_display + "\": an entry of unknown size needs a seekable file");
  }
  std::uint64_t header_offset = m_offset;
  MB_TRY(write_header(name, '0', size.value_or(0)));
  std::vector<char> buffer(1 << 20);
  std::uint64_t total = 0;
  while (true) {
    MB_TRY_ASSIGN(std::size_t got, source.read(buffer));
    if (got == 0) {
      break;
    }
    total += got;
    if (size && total > *size) {
      return fail(Code::corrupt, "tar entry \"" + std::string(name) + "\": more than the " +
                                     std::to_string(*size) + " bytes announced");
    }
    MB_TRY(write({buffer.data(), got}));
  }
  if (size && total != *size) {
    return fail(Code::corrupt, "tar entry \"" + std::string(name) + "\": " + std::to_string(total) +
                                   " bytes, " + std::to_string(*size) + " announced");
  }
  MB_TRY(pad(total));
  if (!size) {
    MB_TRY(write_header(name, '0', total, header_offset));
  }
  return total;
}

Result<void> TarWriter::finish() {
  MB_TRY(write(std::string(2 * k_block, '\0')));
  m_finished = true;
  return {};
}

} // namespace minibuild::build
