#include "temp_area.hpp"

#include <cerrno>
#include <cstdio>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace minibuild::store {

namespace {

std::string random_hex() {
  std::random_device device;
  const std::uint64_t value = (static_cast<std::uint64_t>(device()) << 32) ^ device();
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(value));
  return text;
}

} // namespace

TempArea::~TempArea() {
  if (!m_session.empty()) {
    // Best effort: a failure leaves a directory that clean_stale() removes once our lock is gone.
    (void)m_fs.remove_tree(m_session);
  }
}

Result<void> TempArea::ensure_session() {
  if (!m_session.empty()) {
    return {};
  }
  // A cleaner may lock and delete a session directory in the instant between our mkdir and our
  // flock. So after locking we check that the directory we hold is still linked, and start over
  // with a new name if it is not.
  for (int attempt = 0; attempt < 8; ++attempt) {
    const std::string session =
        std::string(k_dir) + "/" + std::to_string(::getpid()) + "-" + random_hex();
    MB_TRY_CONTEXT(m_fs.make_dir(session), "create temporary directory");
    auto lock = m_fs.lock(session, LockMode::exclusive, Wait::no);
    if (!lock) {
      if (lock.error().sys_errno() == EWOULDBLOCK || lock.error().code() == Code::not_found) {
        continue;
      }
      return fail(std::move(lock).error().wrap("lock temporary directory"));
    }
    struct stat st {};
    if (::fstat(lock->get(), &st) != 0 || st.st_nlink == 0) {
      continue;
    }
    m_session = session;
    m_lock = std::move(*lock);
    return {};
  }
  return fail(Code::io, "create temporary directory in " + m_fs.absolute(k_dir) +
                            ": it keeps disappearing (another process cleaning?)");
}

Result<std::string> TempArea::new_path(std::string_view prefix) {
  const std::lock_guard lock(m_mutex);
  MB_TRY(ensure_session());
  return m_session + "/" + std::string(prefix) + "-" + std::to_string(++m_counter);
}

std::string TempArea::session_path() const {
  const std::lock_guard lock(m_mutex);
  return m_session;
}

Result<std::size_t> TempArea::clean_stale() {
  MB_TRY_ASSIGN(auto entries, m_fs.list(k_dir));
  std::size_t removed = 0;
  for (const auto& entry : entries) {
    const std::string path = std::string(k_dir) + "/" + entry.name;
    if (path == session_path()) {
      continue;
    }
    if (entry.type == EntryType::directory) {
      // Held by a live process: leave it. Anything else (gone, or we got the lock) is stale.
      auto lock = m_fs.lock(path, LockMode::exclusive, Wait::no);
      if (!lock) {
        if (lock.error().sys_errno() == EWOULDBLOCK || lock.error().code() == Code::not_found) {
          continue;
        }
        return fail(std::move(lock).error().wrap("clean temporary files"));
      }
      MB_TRY_CONTEXT(m_fs.remove_tree(path), "clean temporary files");
    } else {
      // Nothing creates plain files directly in tmp/; whatever is there is junk.
      MB_TRY_CONTEXT(m_fs.remove_tree(path), "clean temporary files");
    }
    ++removed;
  }
  return removed;
}

} // namespace minibuild::store
