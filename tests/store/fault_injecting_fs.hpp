// A StoreFs that records every write step and can fail or "crash" at the Nth one.
//
// Modes, at the armed step:
//   fail  - the step returns an I/O error (EIO) and does nothing; later steps work. Models a
//           full disk or a failing device: the store must clean up and stay usable.
//   crash - the step does not happen (a write writes only its first half), and from then on
//           every call, reads included, fails without touching the disk: the process is "dead".
//           Destructors run, but their clean-up is refused, exactly as after kill -9. File
//           descriptors are still closed by their owners, which releases flock locks as the
//           kernel would. The store's crash-safety claim is about a killed process, not a power
//           cut: data written before the kill is in the page cache and survives.
//   exit  - the process calls _exit(0) at the step (for tests that fork a child).
#pragma once

#include <minibuild/store/store_fs.hpp>

#include <cerrno>
#include <map>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

namespace minibuild::store::testing {

class FaultInjectingFs : public StoreFs {
public:
  enum class Mode { fail, crash, exit };

  explicit FaultInjectingFs(std::unique_ptr<StoreFs> inner) : m_inner(std::move(inner)) {}

  /// The write step with index `step` (0-based, counted since the last reset()) will fault.
  void arm(std::size_t step, Mode mode) {
    m_armed = step;
    m_mode = mode;
  }
  void disarm() { m_armed.reset(); }
  /// Restarts step counting and clears the log (not the crashed state).
  void reset() {
    m_steps = 0;
    m_log.clear();
  }
  std::size_t steps() const { return m_steps; }
  bool triggered() const { return m_triggered; }
  bool crashed() const { return m_crashed; }
  /// One line per write step: "rename tmp/…/blob-1 -> blobs/sha256/…".
  const std::vector<std::string>& log() const { return m_log; }

  std::string absolute(std::string_view rel) const override { return m_inner->absolute(rel); }

  Result<UniqueFd> open_read(std::string_view rel) override {
    MB_TRY(alive());
    return m_inner->open_read(rel);
  }
  Result<std::optional<FsStat>> stat(std::string_view rel) override {
    MB_TRY(alive());
    return m_inner->stat(rel);
  }
  Result<std::vector<FsEntry>> list(std::string_view rel) override {
    MB_TRY(alive());
    return m_inner->list(rel);
  }
  Result<UniqueFd> lock(std::string_view rel, LockMode mode, Wait wait) override {
    MB_TRY(alive());
    return m_inner->lock(rel, mode, wait);
  }

  Result<void> make_dir(std::string_view rel) override {
    MB_TRY(step("mkdir " + std::string(rel)));
    return m_inner->make_dir(rel);
  }
  Result<UniqueFd> create_file(std::string_view rel) override {
    MB_TRY(step("create " + std::string(rel)));
    auto fd = m_inner->create_file(rel);
    if (fd) {
      m_fd_paths[fd->get()] = std::string(rel);
    }
    return fd;
  }
  Result<void> write(int fd, std::span<const char> bytes) override {
    auto stepped = step("write " + path_of(fd));
    if (!stepped && m_crashed && m_triggered_now) {
      // A kill in the middle of write(2): part of the data made it.
      (void)m_inner->write(fd, bytes.first(bytes.size() / 2));
    }
    MB_TRY(stepped);
    return m_inner->write(fd, bytes);
  }
  Result<void> sync_file(int fd) override {
    MB_TRY(step("fsync " + path_of(fd)));
    return m_inner->sync_file(fd);
  }
  Result<void> sync_dir(std::string_view rel) override {
    MB_TRY(step("fsync-dir " + std::string(rel)));
    return m_inner->sync_dir(rel);
  }
  Result<void> sync_fs() override {
    MB_TRY(step("syncfs"));
    return m_inner->sync_fs();
  }
  Result<void> rename(std::string_view from, std::string_view to) override {
    MB_TRY(step("rename " + std::string(from) + " -> " + std::string(to)));
    return m_inner->rename(from, to);
  }
  Result<void> remove_file(std::string_view rel) override {
    MB_TRY(step("unlink " + std::string(rel)));
    return m_inner->remove_file(rel);
  }
  Result<void> remove_tree(std::string_view rel) override {
    MB_TRY(step("remove-tree " + std::string(rel)));
    return m_inner->remove_tree(rel);
  }

private:
  Result<void> alive() const {
    if (m_crashed) {
      return fail(Code::io, "simulated crash: the process is dead");
    }
    return {};
  }

  Result<void> step(std::string what) {
    m_triggered_now = false;
    MB_TRY(alive());
    const std::size_t index = m_steps++;
    m_log.push_back(what);
    if (!m_armed || *m_armed != index) {
      return {};
    }
    m_triggered = true;
    m_triggered_now = true;
    switch (m_mode) {
    case Mode::fail:
      return fail_errno(EIO,
                        "simulated fault at step " + std::to_string(index) + " (" + what + ")");
    case Mode::crash:
      m_crashed = true;
      return fail(Code::io, "simulated crash at step " + std::to_string(index) + " (" + what + ")");
    case Mode::exit:
      ::_exit(0);
    }
    return {};
  }

  std::string path_of(int fd) const {
    const auto found = m_fd_paths.find(fd);
    return found == m_fd_paths.end() ? "fd " + std::to_string(fd) : found->second;
  }

  std::unique_ptr<StoreFs> m_inner;
  std::optional<std::size_t> m_armed;
  Mode m_mode = Mode::fail;
  std::size_t m_steps = 0;
  bool m_triggered = false;
  bool m_triggered_now = false;
  bool m_crashed = false;
  std::vector<std::string> m_log;
  std::map<int, std::string> m_fd_paths;
};

} // namespace minibuild::store::testing
