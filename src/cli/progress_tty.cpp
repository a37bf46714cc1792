// The live progress view (progress_tty.hpp).
#include "progress_tty.hpp"

#include "store_format.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sys/ioctl.h>

namespace minibuild::cli {

namespace {

constexpr const char* k_cyan = "\x1b[36m";
constexpr const char* k_dim = "\x1b[2m";
constexpr const char* k_red = "\x1b[31m";
constexpr const char* k_reset = "\x1b[0m";

std::string seconds_text(std::chrono::nanoseconds elapsed) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1fs", std::chrono::duration<double>(elapsed).count());
  return text;
}

bool is_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// Columns counted as UTF-8 code points: close enough for build output (wide CJK glyphs would
// count one column short).
int columns(std::string_view text) {
  return static_cast<int>(
      std::count_if(text.begin(), text.end(), [](char c) { return !is_continuation(c); }));
}

// The first `width` code points of `text`, never cutting a multi-byte sequence.
std::string truncate_columns(std::string_view text, int width) {
  if (width <= 0) {
    return {};
  }
  int seen = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (!is_continuation(text[i]) && seen++ == width) {
      return std::string(text.substr(0, i));
    }
  }
  return std::string(text);
}

// `left` and `right` on one line of `width` columns, `right` flush with the right edge; `left`
// is cut to make room, and `right` dropped when even that does not leave room.
std::string fit_line(std::string_view left, std::string_view right, int width) {
  const int right_columns = columns(right);
  if (right.empty() || width < right_columns + 2) {
    return truncate_columns(left, width);
  }
  std::string line = truncate_columns(left, width - right_columns - 1);
  line.append(static_cast<std::size_t>(width - right_columns - columns(line)), ' ');
  line += right;
  return line;
}

// RUN output is whatever the program wrote: colour sequences, carriage returns of its own
// progress bars, tabs. Only the text after the last '\r' shows on a terminal, and any control
// character would break the in-place redraw.
std::string sanitize(std::string_view line) {
  if (const auto cr = line.rfind('\r'); cr != std::string_view::npos) {
    line.remove_prefix(cr + 1);
  }
  std::string clean;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c == 0x1b) {
      // CSI: ESC [ parameters... final byte in 0x40-0x7e; other escapes: ESC + one byte.
      if (i + 1 < line.size() && line[i + 1] == '[') {
        i += 2;
        while (i < line.size() && (line[i] < 0x40 || line[i] > 0x7e)) {
          ++i;
        }
      } else {
        ++i;
      }
    } else if (c == '\t') {
      clean += ' ';
    } else if (c >= 0x20 && c != 0x7f) {
      clean += static_cast<char>(c);
    }
  }
  return clean;
}

// A rate as docker prints sizes ("2.1MB/s"); empty before the first byte (a layer waiting for
// the registry's answer is not slow yet) and before any time has passed.
std::string rate_text(std::uint64_t bytes, std::chrono::nanoseconds elapsed) {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  if (bytes == 0 || seconds <= 0.0) {
    return {};
  }
  return human_size(static_cast<std::uint64_t>(static_cast<double>(bytes) / seconds)) + "/s";
}

// "sha256:" and the first 12 hex digits: enough to tell layers apart, short enough to leave
// room for the numbers.
std::string short_digest(const std::string& digest) {
  const auto colon = digest.find(':');
  return digest.substr(0, colon == std::string::npos ? 12 : colon + 13);
}

// The pull vertex's own numbers: bytes received / bytes to fetch (the layers not already in
// the store) while it runs, what was downloaded once it ended.
std::string pull_totals(const PullView& pull, VertexState state) {
  if (pull.layer_count == 0) {
    return {};
  }
  std::uint64_t received = 0;
  std::uint64_t present = 0;
  for (const auto& layer : pull.layers) {
    if (layer.state == LayerState::present) {
      present += layer.size;
    } else {
      received += layer.done;
    }
  }
  if (state == VertexState::running) {
    const std::uint64_t to_fetch = pull.total_bytes > present ? pull.total_bytes - present : 0;
    return human_size(received) + " / " + human_size(to_fetch);
  }
  if (state == VertexState::failed) {
    return {}; // the error says what happened
  }
  if (received == 0 && present > 0) {
    return "already in the store";
  }
  return human_size(received) + " downloaded";
}

std::string layer_line(const LayerView& layer, ProgressClock::time_point now, int width) {
  const std::string name = "=> => " + short_digest(layer.digest) + " ";
  switch (layer.state) {
  case LayerState::downloading: {
    const auto elapsed = std::max(std::chrono::nanoseconds{}, now - layer.started);
    std::string text = name + human_size(layer.done) + " / " + human_size(layer.size);
    if (const std::string rate = rate_text(layer.done, elapsed); !rate.empty()) {
      text += " " + rate;
    }
    return fit_line(text, seconds_text(elapsed), width);
  }
  case LayerState::done:
    return fit_line(name + human_size(layer.size) + " / " + human_size(layer.size) + " done",
                    seconds_text(layer.elapsed), width);
  case LayerState::present:
    return fit_line(name + "already in the store", {}, width);
  }
  return {};
}

// Under a running pull: every layer, or for a large image the ones downloading and a count of
// the rest, so that the block stays shorter than a screen.
std::vector<std::string> pull_lines(const PullView& pull, ProgressClock::time_point now,
                                    int width) {
  std::vector<std::string> lines;
  const bool all = pull.layers.size() <= k_pull_layer_lines;
  std::size_t done = 0;
  std::size_t present = 0;
  for (const auto& layer : pull.layers) {
    if (all || layer.state == LayerState::downloading) {
      lines.push_back(layer_line(layer, now, width));
    } else {
      (layer.state == LayerState::done ? done : present) += 1;
    }
  }
  if (done + present > 0) {
    lines.push_back(fit_line("=> => " + std::to_string(done + present) +
                                 " other layers: " + std::to_string(done) + " done, " +
                                 std::to_string(present) + " already in the store",
                             {}, width));
  }
  return lines;
}

struct Entry {
  std::vector<std::string> lines; // uncoloured, already fitted
  const char* color = nullptr;    // for the first line
  bool droppable = false;         // an ended vertex: may be left out of a tall live block
};

Entry entry_for(const VertexView& vertex, ProgressClock::time_point now, int width) {
  Entry entry;
  std::string prefix = "=> ";
  std::chrono::nanoseconds elapsed = vertex.elapsed;
  switch (vertex.state) {
  case VertexState::running:
    entry.color = k_cyan;
    elapsed = std::max(std::chrono::nanoseconds{}, now - vertex.started);
    break;
  case VertexState::done:
    entry.droppable = true;
    break;
  case VertexState::cached:
    entry.color = k_dim;
    entry.droppable = true;
    prefix += "CACHED ";
    break;
  case VertexState::failed:
    entry.color = k_red;
    prefix += "ERROR ";
    break;
  }
  std::string name = prefix + vertex.name;
  if (vertex.pull) {
    if (const std::string totals = pull_totals(*vertex.pull, vertex.state); !totals.empty()) {
      name += "  " + totals;
    }
  }
  entry.lines.push_back(fit_line(name, seconds_text(elapsed), width));
  if (vertex.pull && vertex.state == VertexState::running) {
    for (auto& line : pull_lines(*vertex.pull, now, width)) {
      entry.lines.push_back(std::move(line));
    }
  }
  if (vertex.state == VertexState::running && !vertex.logs.empty()) {
    entry.lines.push_back(fit_line("=> => # " + sanitize(vertex.logs.back()), {}, width));
  }
  return entry;
}

} // namespace

std::string render_frame(const ProgressModel& model, ProgressClock::time_point now,
                         const FrameOptions& options) {
  const int width = std::max(options.width, 1);
  std::vector<Entry> entries;
  std::size_t ended = 0;
  std::size_t total_lines = 1;
  for (const auto& vertex : model.vertices) {
    entries.push_back(entry_for(vertex, now, width));
    total_lines += entries.back().lines.size();
    ended += vertex.state == VertexState::running ? 0 : 1;
  }
  // Too tall for the screen: leave out the oldest ended vertices, then the oldest of the rest.
  const auto limit = static_cast<std::size_t>(std::max(options.max_lines, 0));
  for (bool any_state : {false, true}) {
    for (auto& entry : entries) {
      if (limit == 0 || total_lines <= limit) {
        break;
      }
      if ((entry.droppable || any_state) && !entry.lines.empty()) {
        total_lines -= entry.lines.size();
        entry.lines.clear();
      }
    }
  }

  const auto end = model.finished.value_or(now);
  std::string header = "[+] " + model.title + " " + seconds_text(end - model.started) + " (" +
                       std::to_string(ended) + "/" + std::to_string(model.vertices.size()) + ")" +
                       (model.finished ? " FINISHED" : "");
  std::string frame = fit_line(header, {}, width) + "\n";
  for (const auto& entry : entries) {
    for (std::size_t i = 0; i < entry.lines.size(); ++i) {
      // Colour codes go around the fitted text so they never count as columns.
      if (i == 0 && options.color && entry.color != nullptr) {
        frame += entry.color + entry.lines[i] + k_reset + "\n";
      } else {
        frame += entry.lines[i] + "\n";
      }
    }
  }
  return frame;
}

std::string render_failure_logs(const ProgressModel& model) {
  std::string text;
  for (const auto& vertex : model.vertices) {
    if (vertex.state != VertexState::failed || vertex.logs.empty()) {
      continue; // a step that wrote nothing: the error message says it all
    }
    text += "------\n > " + vertex.name + ":\n";
    for (const auto& line : vertex.logs) {
      text += sanitize(line) + "\n";
    }
    text += "------\n";
  }
  return text;
}

bool colors_allowed(const char* no_color, const char* term) {
  const bool no_color_set = no_color != nullptr && no_color[0] != '\0';
  const bool dumb = term != nullptr && std::strcmp(term, "dumb") == 0;
  return !no_color_set && !dumb;
}

bool tty_progress_wanted(bool stderr_is_tty, const char* term) {
  return stderr_is_tty && (term == nullptr || std::strcmp(term, "dumb") != 0);
}

TtyProgress::TtyProgress(std::FILE* out, Options options)
    : m_out(out), m_options(std::move(options)) {
  if (!m_options.clock) {
    m_options.clock = [] { return ProgressClock::now(); };
  }
  m_color = m_options.color.value_or(colors_allowed(std::getenv("NO_COLOR"), std::getenv("TERM")));
  m_model.title = m_options.title;
  m_model.started = m_options.clock();
  if (m_options.ticker == Ticker::yes) {
    m_ticker = std::jthread([this](std::stop_token stop) { tick(std::move(stop)); });
  }
}

TtyProgress::~TtyProgress() {
  finish();
}

// Without it, a RUN step that prints nothing would show a frozen clock.
void TtyProgress::tick(std::stop_token stop) {
  std::unique_lock lock(m_mutex);
  while (!stop.stop_requested()) {
    m_wake.wait_for(lock, stop, k_redraw_interval, [] { return false; });
    if (!stop.stop_requested()) {
      redraw_locked(false);
    }
  }
}

VertexView& TtyProgress::vertex(int id) {
  for (auto& known : m_model.vertices) {
    if (known.id == id) {
      return known;
    }
  }
  // An event for a vertex that never started: show it under its number.
  VertexView unknown;
  unknown.id = id;
  unknown.name = "#" + std::to_string(id);
  unknown.started = m_options.clock();
  m_model.vertices.push_back(std::move(unknown));
  return m_model.vertices.back();
}

void TtyProgress::started(int id, std::string_view name) {
  std::lock_guard lock(m_mutex);
  VertexView& started = vertex(id);
  started.name = std::string(name);
  started.state = VertexState::running;
  started.started = m_options.clock();
  redraw_locked(true);
}

void TtyProgress::log(int id, std::string_view line) {
  std::lock_guard lock(m_mutex);
  auto& logs = vertex(id).logs;
  logs.emplace_back(line);
  if (logs.size() > k_kept_log_lines) {
    logs.pop_front();
  }
  redraw_locked(false);
}

void TtyProgress::end(int id, VertexState state, std::chrono::nanoseconds elapsed) {
  std::lock_guard lock(m_mutex);
  VertexView& ended = vertex(id);
  ended.state = state;
  ended.elapsed = elapsed;
  redraw_locked(true);
}

void TtyProgress::done(int id, std::chrono::nanoseconds elapsed) {
  end(id, VertexState::done, elapsed);
}

void TtyProgress::cached(int id) {
  end(id, VertexState::cached, {});
}

void TtyProgress::failed(int id, const Error& /*error*/) {
  // The error itself reaches the user through the command's exit; the view shows the step red
  // and, at the end, its output (render_failure_logs).
  std::chrono::nanoseconds elapsed{};
  {
    std::lock_guard lock(m_mutex);
    elapsed = m_options.clock() - vertex(id).started;
  }
  end(id, VertexState::failed, elapsed);
}

void TtyProgress::message(std::string_view line) {
  std::lock_guard lock(m_mutex);
  std::string out;
  if (m_drawn_lines > 0) {
    // Over the block: it is drawn again below the message.
    out += "\x1b[" + std::to_string(m_drawn_lines) + "A\r\x1b[J";
  }
  out.append(line);
  out += '\n';
  std::fputs(out.c_str(), m_out);
  std::fflush(m_out);
  m_drawn_lines = 0;
  if (!m_finished && !m_model.vertices.empty()) {
    redraw_locked(true);
  }
}

void TtyProgress::finish() {
  if (m_ticker.joinable()) {
    m_ticker.request_stop();
    m_ticker.join();
  }
  std::lock_guard lock(m_mutex);
  if (m_finished) {
    return;
  }
  m_finished = true;
  if (m_model.vertices.empty()) {
    return; // the build failed before its first step: nothing to show
  }
  m_model.finished = m_options.clock();
  redraw_locked(true, true);
  std::fputs(render_failure_logs(m_model).c_str(), m_out);
  std::fflush(m_out);
}

int TtyProgress::start_pull(std::string_view name) {
  std::lock_guard lock(m_mutex);
  const int id = --m_last_pull_id;
  VertexView& pull = vertex(id);
  pull.name = std::string(name);
  pull.state = VertexState::running;
  pull.started = m_options.clock();
  pull.pull.emplace();
  redraw_locked(true);
  return id;
}

void TtyProgress::change_pull(
    int id, bool force, const std::function<void(VertexView&, ProgressClock::time_point)>& change) {
  std::lock_guard lock(m_mutex);
  VertexView& pull = vertex(id);
  if (!pull.pull) {
    pull.pull.emplace();
  }
  change(pull, m_options.clock());
  redraw_locked(force);
}

void TtyProgress::end_pull(int id, VertexState state) {
  std::chrono::nanoseconds elapsed{};
  {
    std::lock_guard lock(m_mutex);
    elapsed = m_options.clock() - vertex(id).started;
  }
  end(id, state, elapsed);
}

int TtyProgress::redraws() const {
  std::lock_guard lock(m_mutex);
  return m_redraws;
}

void TtyProgress::redraw_locked(bool force, bool final_frame) {
  if (m_finished && !final_frame) {
    return;
  }
  const auto now = m_options.clock();
  if (!force && m_redraws > 0 && now - m_last_draw < k_redraw_interval) {
    return;
  }
  m_last_draw = now;
  ++m_redraws;

  FrameOptions frame_options;
  frame_options.color = m_color;
  frame_options.width = m_options.width;
  int height = m_options.height;
  if (m_options.width == 0 || m_options.height == 0) {
    // Asked on every draw, so that a resized terminal is followed.
    winsize size{};
    const bool known = ::ioctl(fileno(m_out), TIOCGWINSZ, &size) == 0;
    if (m_options.width == 0) {
      frame_options.width = known && size.ws_col > 0 ? size.ws_col : 80;
    }
    if (m_options.height == 0 && known) {
      height = size.ws_row;
    }
  }
  // The final block is printed whole: it is never moved over again.
  frame_options.max_lines = final_frame || height <= 1 ? 0 : height - 1;

  const std::string frame = render_frame(m_model, now, frame_options);
  std::string out;
  if (m_drawn_lines > 0) {
    out += "\x1b[" + std::to_string(m_drawn_lines) + "A";
  }
  int lines = 0;
  std::size_t begin = 0;
  for (auto newline = frame.find('\n'); newline != std::string::npos;
       begin = newline + 1, newline = frame.find('\n', begin)) {
    out += "\r\x1b[2K";
    out.append(frame, begin, newline + 1 - begin);
    ++lines;
  }
  // The new block may be shorter than the last one (a log line went away): clear the rest.
  out += "\x1b[J";
  m_drawn_lines = lines;
  std::fputs(out.c_str(), m_out);
  std::fflush(m_out);
}

TtyPull::TtyPull(TtyProgress& view, std::string_view name)
    : m_view(view), m_id(view.start_pull(name)) {}

TtyPull::~TtyPull() {
  end(false);
}

LayerView& TtyPull::layer(VertexView& vertex, const oci::Descriptor& descriptor) {
  const std::string digest = descriptor.digest.to_string();
  for (auto& known : vertex.pull->layers) {
    if (known.digest == digest) {
      return known;
    }
  }
  LayerView added;
  added.digest = digest;
  added.size = descriptor.size > 0 ? static_cast<std::uint64_t>(descriptor.size) : 0;
  vertex.pull->layers.push_back(std::move(added));
  return vertex.pull->layers.back();
}

void TtyPull::resolved(const registry::Reference& /*reference*/, const oci::Digest& /*manifest*/,
                       std::size_t layers, std::uint64_t total_bytes) {
  m_view.change_pull(m_id, true, [&](VertexView& vertex, ProgressClock::time_point) {
    vertex.pull->layer_count = layers;
    vertex.pull->total_bytes = total_bytes;
  });
}

void TtyPull::layer_present(const oci::Descriptor& descriptor) {
  m_view.change_pull(m_id, true, [&](VertexView& vertex, ProgressClock::time_point) {
    layer(vertex, descriptor).state = LayerState::present;
  });
}

void TtyPull::layer_started(const oci::Descriptor& descriptor) {
  // Also after a retry: the layer starts again from nothing.
  m_view.change_pull(m_id, true, [&](VertexView& vertex, ProgressClock::time_point now) {
    LayerView& started = layer(vertex, descriptor);
    started.state = LayerState::downloading;
    started.done = 0;
    started.started = now;
  });
}

void TtyPull::layer_progress(const oci::Descriptor& descriptor, std::uint64_t bytes) {
  m_view.change_pull(m_id, false, [&](VertexView& vertex, ProgressClock::time_point) {
    layer(vertex, descriptor).done = bytes;
  });
}

void TtyPull::layer_done(const oci::Descriptor& descriptor) {
  m_view.change_pull(m_id, true, [&](VertexView& vertex, ProgressClock::time_point now) {
    LayerView& done = layer(vertex, descriptor);
    done.state = LayerState::done;
    done.done = done.size;
    done.elapsed = now - done.started;
  });
}

void TtyPull::layer_retry(const oci::Descriptor& descriptor, std::string_view reason) {
  m_view.change_pull(m_id, true, [&](VertexView& vertex, ProgressClock::time_point) {
    vertex.logs.push_back(short_digest(descriptor.digest.to_string()) +
                          ": retrying from the start: " + std::string(reason));
    if (vertex.logs.size() > TtyProgress::k_kept_log_lines) {
      vertex.logs.pop_front();
    }
  });
}

void TtyPull::end(bool ok) {
  if (m_ended) {
    return;
  }
  m_ended = true;
  m_view.end_pull(m_id, ok ? VertexState::done : VertexState::failed);
}

} // namespace minibuild::cli
