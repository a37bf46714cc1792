// Pins the calling thread's character-set locale while libarchive converts path names.
//
// libarchive converts names between the current locale and UTF-8 (pax `path` records). In the
// "C" locale a non-ASCII name is written with `hdrcharset=BINARY`, in a UTF-8 locale without:
// the same tree would give two different layers depending on the caller's environment. Under
// C.UTF-8 (built into glibc since 2.35) valid UTF-8 names are plain pax records and other byte
// strings are written raw with hdrcharset=BINARY, whatever the process locale is. uselocale()
// is per thread, so this never touches other threads.
#pragma once

#include <clocale>
#include <locale.h>

namespace minibuild::layer {

class ScopedUtf8Locale {
public:
  ScopedUtf8Locale() {
    m_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    if (m_locale == static_cast<locale_t>(nullptr)) {
      // An older libc without a built-in C.UTF-8: "C" is still deterministic.
      m_locale = newlocale(LC_CTYPE_MASK, "C", static_cast<locale_t>(nullptr));
    }
    if (m_locale != static_cast<locale_t>(nullptr)) {
      m_previous = uselocale(m_locale);
    }
  }
  ~ScopedUtf8Locale() {
    if (m_locale != static_cast<locale_t>(nullptr)) {
      uselocale(m_previous);
      freelocale(m_locale);
    }
  }
  ScopedUtf8Locale(const ScopedUtf8Locale&) = delete;
  ScopedUtf8Locale& operator=(const ScopedUtf8Locale&) = delete;

private:
  locale_t m_locale = static_cast<locale_t>(nullptr);
  locale_t m_previous = static_cast<locale_t>(nullptr);
};

} // namespace minibuild::layer
