// The live progress view of `minibuild build` on a terminal (issue #6, docs/cli.md "Progress"),
// in the manner of BuildKit's tty display:
//
//   [+] Building 3.2s (4/5)
//   => [1/4] FROM docker.io/library/alpine:3.19                      0.4s
//   => CACHED [2/4] COPY go.mod /src/                                 0.0s
//   => [3/4] RUN make                                                 1.3s
//   => => # cc -o hello hello.c
//
// The block is redrawn in place (cursor up, clear line). What is drawn is a pure function of a
// ProgressModel and a time point (render_frame), so tests check frames without a terminal;
// TtyProgress only keeps the model, decides when to redraw and writes the escapes.
#pragma once

#include <minibuild/build/executor.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace minibuild::cli {

using ProgressClock = std::chrono::steady_clock;

enum class VertexState { running, done, cached, failed };

/// One vertex as the view knows it.
struct VertexView {
  int id = 0;
  std::string name;
  VertexState state = VertexState::running;
  ProgressClock::time_point started{};
  std::chrono::nanoseconds elapsed{}; ///< set when the vertex ends
  /// The last lines of output (at most TtyProgress::k_kept_log_lines), as written: frames show
  /// them without control characters and ANSI sequences.
  std::deque<std::string> logs;
};

/// Everything a frame shows. The build's total step count is not known in advance (the sink
/// only hears of vertices as they start), so the header counts ended / started vertices.
struct ProgressModel {
  ProgressClock::time_point started{};
  std::optional<ProgressClock::time_point> finished; ///< freezes the header's clock
  std::vector<VertexView> vertices;
};

struct FrameOptions {
  /// Terminal columns: no line of the frame is wider (counted in UTF-8 code points).
  int width = 80;
  /// The most lines the frame may have (0: no limit). A block taller than the screen cannot be
  /// redrawn in place, so the oldest ended vertices are left out first.
  int max_lines = 0;
  bool color = false; ///< ANSI colours: running cyan, cached dim, error red
};

/// The block for `model` at time `now`: a header line, then one line per vertex, each with its
/// time right-aligned, and under each running vertex its last log line. Every line ends in '\n'.
std::string render_frame(const ProgressModel& model, ProgressClock::time_point now,
                         const FrameOptions& options);

/// What is printed once below the final block for each failed vertex: its name and its last
/// lines of output, untruncated, between "------" rules as BuildKit does. Empty when no failed
/// vertex wrote anything.
std::string render_failure_logs(const ProgressModel& model);

/// Whether colours may be used: not when NO_COLOR is set to a non-empty value (no-color.org)
/// and not when TERM is "dumb". Arguments are the variables' values, nullptr when unset.
bool colors_allowed(const char* no_color, const char* term);

/// Whether `--progress auto` means the tty view: stderr is a terminal and TERM is not "dumb".
bool tty_progress_wanted(bool stderr_is_tty, const char* term);

/// Whether a background thread refreshes the running vertices' clocks.
enum class Ticker { no, yes };

/// A build::ProgressSink drawing the live view on `out` (not owned). Redraws on every state
/// change (started, done, cached, failed) and, for log lines and the ticker, at most once per
/// k_redraw_interval. Thread-safe: the ticker draws from its own thread under the same mutex.
/// The final block stays on screen after finish() (or the destructor).
class TtyProgress : public build::ProgressSink {
public:
  static constexpr std::chrono::milliseconds k_redraw_interval{100};
  static constexpr std::size_t k_kept_log_lines = 10;

  struct Options {
    /// The time source; default steady_clock::now. Tests pass their own.
    std::function<ProgressClock::time_point()> clock;
    int width = 0;  ///< 0: the terminal's (TIOCGWINSZ on `out`), 80 when unknown
    int height = 0; ///< 0: the terminal's; limits the live block to height - 1 lines
    /// nullopt: colors_allowed(getenv("NO_COLOR"), getenv("TERM")).
    std::optional<bool> color;
    Ticker ticker = Ticker::no;
  };

  TtyProgress(std::FILE* out, Options options);
  ~TtyProgress() override;
  TtyProgress(const TtyProgress&) = delete;
  TtyProgress& operator=(const TtyProgress&) = delete;

  void started(int id, std::string_view name) override;
  void log(int id, std::string_view line) override;
  void done(int id, std::chrono::nanoseconds elapsed) override;
  void failed(int id, const Error& error) override;
  void cached(int id) override;

  /// Draws the final block in full, then the failed steps' output. Idempotent.
  void finish();

  /// How many times the block was drawn (for tests of the throttling).
  int redraws() const;

private:
  VertexView& vertex(int id);
  void end(int id, VertexState state, std::chrono::nanoseconds elapsed);
  void redraw_locked(bool force, bool final_frame = false);
  void tick(std::stop_token stop);

  std::FILE* m_out;
  Options m_options;
  bool m_color;
  mutable std::mutex m_mutex;
  ProgressModel m_model;
  ProgressClock::time_point m_last_draw{};
  int m_drawn_lines = 0;
  int m_redraws = 0;
  bool m_finished = false;
  std::condition_variable_any m_wake;
  std::jthread m_ticker; // last: stopped and joined before the members it uses go
};

} // namespace minibuild::cli
