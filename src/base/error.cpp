#include <minibuild/base/error.hpp>

#include <cstring>

namespace minibuild {

std::string_view code_name(Code code) {
  switch (code) {
  case Code::internal:
    return "internal";
  case Code::usage:
    return "usage";
  case Code::dockerfile:
    return "dockerfile";
  case Code::build_failed:
    return "build_failed";
  case Code::not_found:
    return "not_found";
  case Code::io:
    return "io";
  case Code::corrupt:
    return "corrupt";
  case Code::network:
    return "network";
  case Code::auth:
    return "auth";
  case Code::sandbox:
    return "sandbox";
  case Code::unsupported:
    return "unsupported";
  case Code::interrupted:
    return "interrupted";
  }
  return "unknown";
}

Error Error::from_errno(int sys_errno, std::string message) {
  // ENOENT is what users meet most ("no such file"); giving it its own code lets the CLI say
  // "not found" rather than "I/O error" without every caller checking errno.
  Error error(sys_errno == ENOENT ? Code::not_found : Code::io, std::move(message));
  error.m_errno = sys_errno;
  error.m_message += ": ";
  error.m_message += std::strerror(sys_errno);
  return error;
}

Error& Error::wrap(std::string context) & {
  m_context.insert(m_context.begin(), std::move(context));
  return *this;
}

Error&& Error::wrap(std::string context) && {
  return std::move(wrap(std::move(context)));
}

Error& Error::at(SourceRange location) & {
  if (!m_location) {
    m_location = std::move(location);
  }
  return *this;
}

Error&& Error::at(SourceRange location) && {
  return std::move(at(std::move(location)));
}

Error&& Error::with_code(Code code) && {
  m_code = code;
  return std::move(*this);
}

Error&& Error::tagged(std::string_view tag) && {
  m_tag = std::string(tag);
  return std::move(*this);
}

std::string Error::what() const {
  std::string text;
  if (m_location) {
    text += m_location->file;
    if (m_location->line > 0) {
      text += ':' + std::to_string(m_location->line);
      if (m_location->column > 0) {
        text += ':' + std::to_string(m_location->column);
      }
    }
    text += ": ";
  }
  for (const auto& context : m_context) {
    text += context;
    text += ": ";
  }
  text += m_message;
  return text;
}

} // namespace minibuild
