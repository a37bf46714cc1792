// The closing summary of `minibuild build` (issue #6): what was built, how big each layer is and
// which instruction made it, and how long each step took.
#pragma once

#include <minibuild/build/executor.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace minibuild::cli {

/// Passes every event on to another sink and remembers each vertex's name, time and whether
/// the cache answered it.
class RecordingProgress : public build::ProgressSink {
public:
  explicit RecordingProgress(build::ProgressSink& next) : m_next(next) {}
  void started(int id, std::string_view name) override;
  void log(int id, std::string_view line) override;
  void done(int id, std::chrono::nanoseconds elapsed) override;
  void failed(int id, const Error& error) override;
  void cached(int id) override;

  struct Step {
    int id = 0;
    std::string name;
    std::chrono::nanoseconds elapsed{};
    bool cached = false;
  };
  const std::vector<Step>& steps() const { return m_steps; }

private:
  Step* find(int id);
  build::ProgressSink& m_next;
  std::vector<Step> m_steps;
};

/// Writes the summary: image id, manifest digest, names; one line per layer (compressed size
/// and the history entry that made it; base layers marked); the total; the steps with their
/// times (CACHED for those the cache answered).
void print_build_summary(std::FILE* out, const build::BuildResult& result,
                         const std::vector<RecordingProgress::Step>& steps);

} // namespace minibuild::cli
