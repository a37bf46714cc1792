// The live progress view of `minibuild build` on a terminal (issue #6, docs/cli.md "Progress"),
// in the manner of BuildKit's tty display:
//
//   [+] Building 3.2s (4/5)
//   => pull docker.io/library/alpine:3.19  1.20MB / 3.40MB            0.6s
//   => => sha256:4abcf2066143 1.20MB / 3.40MB 2.00MB/s                0.6s
//   => [1/1] STEP 1/5: FROM docker.io/library/alpine:3.19@sha256:…    0.0s
//   => CACHED [1/1] STEP 2/5: COPY go.mod /src/                       0.0s
//   => [1/1] STEP 4/5: RUN make                                       1.3s
//   => => # cc -o hello hello.c
//
// Step names are the executor's, the same as --progress=plain prints (buildah's numbering,
// build/executor.hpp). A pull (TtyPull) is a vertex of its own with a line per layer.
//
// The block is redrawn in place (cursor up, clear line). What is drawn is a pure function of a
// ProgressModel and a time point (render_frame), so tests check frames without a terminal;
// TtyProgress only keeps the model, decides when to redraw and writes the escapes.
#pragma once

#include <minibuild/build/executor.hpp>
#include <minibuild/registry/pull.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
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

enum class LayerState { downloading, done, present };

/// One layer of a pull as the view knows it.
struct LayerView {
  std::string digest;     ///< "sha256:…"
  std::uint64_t size = 0; ///< compressed, as the manifest says
  std::uint64_t done = 0; ///< bytes received in the current attempt
  LayerState state = LayerState::downloading;
  ProgressClock::time_point started{};
  std::chrono::nanoseconds elapsed{}; ///< set when the download ends
};

/// What a pull vertex shows besides its name: the manifest's totals and the layers seen so far
/// (started or found in the store), in that order. A layer the manifest repeats is one entry.
struct PullView {
  std::size_t layer_count = 0;   ///< 0 until the manifest is known
  std::uint64_t total_bytes = 0; ///< all layers, compressed
  std::vector<LayerView> layers;
};

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
  std::optional<PullView> pull; ///< set for a pull vertex (TtyPull)
};

/// Everything a frame shows. The build's total step count is not known in advance (the sink
/// only hears of vertices as they start), so the header counts ended / started vertices.
struct ProgressModel {
  std::string title = "Building"; ///< the header's verb: "[+] Building 3.2s (4/5)"
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

/// The most layer lines under a running pull; a pull of more layers shows only the layers
/// downloading and one line counting the others.
constexpr std::size_t k_pull_layer_lines = 6;

/// The block for `model` at time `now`: a header line, then one line per vertex, each with its
/// time right-aligned, and under each running vertex its last log line. A pull vertex shows
/// bytes received / bytes to fetch, and while it runs one line per layer: received / size and
/// the rate for a layer downloading, its size when done, "already in the store". Every line
/// ends in '\n'.
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
    std::string title = "Building"; ///< ProgressModel::title
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

  /// Prints `line` above the live block (a notice that belongs to no step, such as a registry
  /// retry), then redraws the block below it.
  void message(std::string_view line);

  /// How many times the block was drawn (for tests of the throttling).
  int redraws() const;

private:
  friend class TtyPull;
  /// A new vertex for a pull, with an id below zero (the executor's ids are positive).
  int start_pull(std::string_view name);
  /// Applies `change` (given the vertex and the time) to the pull vertex `id` and redraws,
  /// always with `force`, else at most once per k_redraw_interval.
  void change_pull(int id, bool force,
                   const std::function<void(VertexView&, ProgressClock::time_point)>& change);
  void end_pull(int id, VertexState state);
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
  int m_last_pull_id = 0;
  std::condition_variable_any m_wake;
  std::jthread m_ticker; // last: stopped and joined before the members it uses go
};

/// Shows one pull in a TtyProgress as a vertex named `name` ("pull docker.io/library/alpine")
/// with its layers under it; give it to registry::PullOptions::progress. Construction starts
/// the vertex, end() ends it; the destructor ends it as failed if end() was not called. As
/// thread-safe as the pull needs (the view's mutex). The view must outlive it.
class TtyPull : public registry::PullProgress {
public:
  TtyPull(TtyProgress& view, std::string_view name);
  ~TtyPull() override;
  TtyPull(const TtyPull&) = delete;
  TtyPull& operator=(const TtyPull&) = delete;

  void resolved(const registry::Reference& reference, const oci::Digest& manifest,
                std::size_t layers, std::uint64_t total_bytes) override;
  void layer_present(const oci::Descriptor& layer) override;
  void layer_started(const oci::Descriptor& layer) override;
  void layer_progress(const oci::Descriptor& layer, std::uint64_t bytes) override;
  void layer_done(const oci::Descriptor& layer) override;
  /// Shown as the vertex's log line while it runs.
  void layer_retry(const oci::Descriptor& layer, std::string_view reason) override;

  /// Ends the vertex: done when `ok`, failed otherwise. Idempotent.
  void end(bool ok);

private:
  static LayerView& layer(VertexView& vertex, const oci::Descriptor& descriptor);

  TtyProgress& m_view;
  int m_id;
  bool m_ended = false;
};

} // namespace minibuild::cli
