#include "cli/progress_tty.hpp"

#include <minibuild/oci/descriptor.hpp>
#include <minibuild/oci/digest.hpp>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>

using namespace minibuild;
using namespace minibuild::cli;
using namespace std::chrono_literals;

namespace {

const ProgressClock::time_point t0{};

VertexView vertex(int id, std::string name, VertexState state,
                  std::chrono::nanoseconds elapsed = {}) {
  VertexView view;
  view.id = id;
  view.name = std::move(name);
  view.state = state;
  view.elapsed = elapsed;
  return view;
}

LayerView layer_view(std::string digest, std::uint64_t size, LayerState state,
                     std::uint64_t done = 0) {
  LayerView view;
  view.digest = std::move(digest);
  view.size = size;
  view.state = state;
  view.done = done;
  return view;
}

oci::Descriptor blob(char hex, std::int64_t size) {
  oci::Descriptor descriptor;
  descriptor.digest = *oci::Digest::parse("sha256:" + std::string(64, hex));
  descriptor.size = size;
  return descriptor;
}

FrameOptions plain_options(int width = 40) {
  FrameOptions options;
  options.width = width;
  return options;
}

// A FILE* whose contents the test reads back.
struct MemoryFile {
  char* data = nullptr;
  std::size_t size = 0;
  std::FILE* file = open_memstream(&data, &size);
  ~MemoryFile() {
    if (file != nullptr) {
      std::fclose(file);
    }
    std::free(data);
  }
  std::string text() {
    std::fflush(file);
    return std::string(data, size);
  }
};

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t found = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++found;
  }
  return found;
}

} // namespace

TEST_CASE("tty progress frame shows running, done, cached and failed vertices", "[cli]") {
  ProgressModel model;
  model.started = t0;
  model.vertices.push_back(vertex(1, "[1/1] STEP 1/4: FROM scratch", VertexState::done, 200ms));
  model.vertices.push_back(vertex(2, "[1/1] STEP 2/4: COPY a /a", VertexState::cached));
  model.vertices.push_back(vertex(3, "[1/1] STEP 3/4: RUN make", VertexState::running));
  model.vertices[2].started = t0 + 2s;
  model.vertices[2].logs = {"cc -c a.c", "cc -o hello a.o"};
  model.vertices.push_back(vertex(4, "[1/1] STEP 4/4: RUN test", VertexState::failed, 1500ms));

  const std::string frame = render_frame(model, t0 + 3300ms, plain_options(48));
  CHECK(frame == "[+] Building 3.3s (3/4)\n"
                 "=> [1/1] STEP 1/4: FROM scratch             0.2s\n"
                 "=> CACHED [1/1] STEP 2/4: COPY a /a         0.0s\n"
                 "=> [1/1] STEP 3/4: RUN make                 1.3s\n"
                 "=> => # cc -o hello a.o\n"
                 "=> ERROR [1/1] STEP 4/4: RUN test           1.5s\n");

  model.finished = t0 + 4s;
  model.vertices[2].state = VertexState::done;
  model.vertices[2].elapsed = 2s;
  const std::string final_frame = render_frame(model, t0 + 9s, plain_options());
  CHECK(final_frame.rfind("[+] Building 4.0s (4/4) FINISHED\n", 0) == 0);
  // An ended vertex no longer shows its output.
  CHECK(final_frame.find("cc -o hello") == std::string::npos);
}

TEST_CASE("tty progress frame truncates lines to the terminal width", "[cli]") {
  ProgressModel model;
  model.vertices.push_back(
      vertex(1, "[1/2] COPY a-very-long-source-name /destination", VertexState::done, 1s));
  model.vertices.push_back(vertex(2, "[2/2] RUN échoé", VertexState::running));
  model.vertices[1].logs = {"output \x1b[31mred\x1b[0m\tand tab, progress 10%\rprogress 100% done"};

  const std::string frame = render_frame(model, t0 + 1s, plain_options(24));
  CHECK(frame == "[+] Building 1.0s (1/2)\n"
                 "=> [1/2] COPY a-ver 1.0s\n"
                 "=> [2/2] RUN échoé  1.0s\n"
                 "=> => # progress 100% do\n");

  // Too narrow for the time: the name alone, cut.
  const std::string narrow = render_frame(model, t0 + 1s, plain_options(5));
  CHECK(narrow.find("\n=> [1\n") != std::string::npos);

  // A sanitised log line keeps no escape or control character.
  model.vertices[1].logs = {"a\x1b[1;32mb\x1b"
                            "c\x07"
                            "d"};
  CHECK(render_frame(model, t0, plain_options(80)).find("=> => # abd\n") != std::string::npos);
}

TEST_CASE("tty progress frame colours only when asked", "[cli]") {
  ProgressModel model;
  model.vertices.push_back(vertex(1, "[1/3] RUN a", VertexState::running));
  model.vertices.push_back(vertex(2, "[2/3] RUN b", VertexState::cached));
  model.vertices.push_back(vertex(3, "[3/3] RUN c", VertexState::failed));
  model.vertices.push_back(vertex(4, "exporting to image", VertexState::done));

  FrameOptions options = plain_options(30);
  CHECK(render_frame(model, t0, options).find('\x1b') == std::string::npos);

  options.color = true;
  const std::string coloured = render_frame(model, t0, options);
  CHECK(coloured.find("\x1b[36m=> [1/3] RUN a") != std::string::npos);
  CHECK(coloured.find("\x1b[2m=> CACHED [2/3] RUN b") != std::string::npos);
  CHECK(coloured.find("\x1b[31m=> ERROR [3/3] RUN c") != std::string::npos);
  CHECK(coloured.find("\n=> exporting to image") != std::string::npos);
  CHECK(count(coloured, "\x1b[0m\n") == 3);
  // Colour codes do not count as columns: the visible text is the same.
  CHECK(coloured.find("0.0s\x1b[0m\n") != std::string::npos);

  CHECK(colors_allowed(nullptr, "xterm-256color"));
  CHECK(colors_allowed(nullptr, nullptr));
  CHECK_FALSE(colors_allowed("1", "xterm"));
  CHECK_FALSE(colors_allowed("false", "xterm")); // any non-empty value, as no-color.org says
  CHECK(colors_allowed("", "xterm"));
  CHECK_FALSE(colors_allowed(nullptr, "dumb"));

  CHECK(tty_progress_wanted(true, "xterm"));
  CHECK(tty_progress_wanted(true, nullptr));
  CHECK_FALSE(tty_progress_wanted(true, "dumb"));
  CHECK_FALSE(tty_progress_wanted(false, "xterm"));
}

TEST_CASE("tty progress frame leaves out the oldest ended vertices when too tall", "[cli]") {
  ProgressModel model;
  for (int id = 1; id <= 5; ++id) {
    model.vertices.push_back(vertex(id, "step " + std::to_string(id), VertexState::done));
  }
  model.vertices.push_back(vertex(6, "step 6", VertexState::running));
  model.vertices.back().logs = {"working"};

  FrameOptions options = plain_options(30);
  options.max_lines = 5;
  const std::string frame = render_frame(model, t0, options);
  CHECK(count(frame, "\n") == 5);
  CHECK(frame.find("step 3") == std::string::npos);
  CHECK(frame.find("step 4") != std::string::npos);
  CHECK(frame.find("step 6") != std::string::npos);
  CHECK(frame.find("(5/6)") != std::string::npos);
}

TEST_CASE("tty progress prints the failed step's output below the final block", "[cli]") {
  ProgressModel model;
  model.vertices.push_back(vertex(1, "[1/1] STEP 2/2: RUN make", VertexState::failed));
  model.vertices[0].logs = {"make: *** [all] Error 1"};
  CHECK(render_failure_logs(model) ==
        "------\n > [1/1] STEP 2/2: RUN make:\nmake: *** [all] Error 1\n------\n");
  model.vertices[0].state = VertexState::done;
  CHECK(render_failure_logs(model).empty());
  model.vertices[0].state = VertexState::failed;
  model.vertices[0].logs.clear();
  CHECK(render_failure_logs(model).empty());
}

TEST_CASE("tty progress redraws on state changes and throttles log lines", "[cli]") {
  MemoryFile out;
  REQUIRE(out.file != nullptr);
  auto now = t0;
  TtyProgress::Options options;
  options.clock = [&now] { return now; };
  options.width = 40;
  options.height = 24;
  options.color = false;
  TtyProgress progress(out.file, options);

  progress.started(1, "[1/1] STEP 2/2: RUN make");
  CHECK(progress.redraws() == 1);
  now += 10ms;
  progress.log(1, "line 1");
  progress.log(1, "line 2");
  CHECK(progress.redraws() == 1); // within 100 ms of the last draw
  now += 100ms;
  progress.log(1, "line 3");
  CHECK(progress.redraws() == 2);
  now += 1ms;
  progress.log(1, "oops");
  CHECK(progress.redraws() == 2);
  progress.failed(1, Error(Code::build_failed, "exit 2"));
  CHECK(progress.redraws() == 3); // a state change always draws

  progress.finish();
  progress.finish();
  CHECK(progress.redraws() == 4);
  const std::string text = out.text();
  // Each draw moves up over the block before it: header + vertex (after started and after
  // failed, whose log line is no longer shown), or header + vertex + log line.
  CHECK(count(text, "\x1b[2A") == 2);
  CHECK(count(text, "\x1b[3A") == 1);
  CHECK(count(text, "[+] Building") == 4);
  CHECK(text.find("=> ERROR [1/1] STEP 2/2: RUN make") != std::string::npos);
  CHECK(text.find("FINISHED") != std::string::npos);
  const std::string tail = "line 3\noops\n------\n";
  REQUIRE(text.size() > tail.size());
  CHECK(text.substr(text.size() - tail.size()) == tail);
  CHECK(text.find('\x1b' + std::string("[36m")) == std::string::npos);
}

TEST_CASE("tty progress frame shows a pull's layers with bytes and rate", "[cli]") {
  ProgressModel model;
  VertexView pull = vertex(-1, "pull example.com/app:1", VertexState::running);
  pull.pull.emplace();
  pull.pull->layer_count = 3;
  pull.pull->total_bytes = 5'500'000;
  pull.pull->layers.push_back(layer_view("sha256:aaaaaaaaaaaa1111", 500'000, LayerState::present));
  pull.pull->layers.push_back(
      layer_view("sha256:bbbbbbbbbbbb2222", 3'000'000, LayerState::downloading, 1'000'000));
  pull.pull->layers.back().started = t0 + 1s;
  pull.pull->layers.push_back(
      layer_view("sha256:cccccccccccc3333", 2'000'000, LayerState::done, 2'000'000));
  pull.pull->layers.back().elapsed = 500ms;
  model.vertices.push_back(pull);

  // The vertex: received / to fetch (the stored layer not counted); each layer under it.
  CHECK(render_frame(model, t0 + 2s, plain_options(56)) ==
        "[+] Building 2.0s (0/1)\n"
        "=> pull example.com/app:1  3MB / 5MB                2.0s\n"
        "=> => sha256:aaaaaaaaaaaa already in the store\n"
        "=> => sha256:bbbbbbbbbbbb 1MB / 3MB 1MB/s           1.0s\n"
        "=> => sha256:cccccccccccc 2MB / 2MB done            0.5s\n");

  // Nothing received yet: no rate (the registry has not answered; it is not slow yet).
  model.vertices[0].pull->layers[1].done = 0;
  const std::string waiting = render_frame(model, t0 + 2s, plain_options(56));
  CHECK(waiting.find("=> => sha256:bbbbbbbbbbbb 0B / 3MB     ") != std::string::npos);
  CHECK(waiting.find("/s") == std::string::npos);

  // Ended: one line, what was downloaded.
  model.vertices[0].state = VertexState::done;
  model.vertices[0].elapsed = 3s;
  model.vertices[0].pull->layers[1].state = LayerState::done;
  model.vertices[0].pull->layers[1].done = 3'000'000;
  CHECK(render_frame(model, t0 + 3s, plain_options(56)) ==
        "[+] Building 3.0s (1/1)\n"
        "=> pull example.com/app:1  5MB downloaded           3.0s\n");

  // Nothing to fetch.
  for (auto& stored : model.vertices[0].pull->layers) {
    stored.state = LayerState::present;
  }
  CHECK(render_frame(model, t0 + 3s, plain_options(56))
            .find("=> pull example.com/app:1  already in the store") != std::string::npos);
  // Failed: the error says why, the line says nothing of bytes.
  model.vertices[0].state = VertexState::failed;
  CHECK(render_frame(model, t0 + 3s, plain_options(56)).find("=> ERROR pull example.com/app:1 ") !=
        std::string::npos);
  CHECK(render_frame(model, t0 + 3s, plain_options(56)).find("store") == std::string::npos);
}

TEST_CASE("tty progress frame of a pull of many layers counts the ones not downloading", "[cli]") {
  ProgressModel model;
  VertexView pull = vertex(-1, "pull big:1", VertexState::running);
  pull.pull.emplace();
  pull.pull->layer_count = 9;
  pull.pull->total_bytes = 9'000;
  for (char c : std::string("abcdefgh")) {
    const auto state = c < 'd'   ? LayerState::present
                       : c < 'g' ? LayerState::done
                                 : LayerState::downloading;
    pull.pull->layers.push_back(layer_view("sha256:" + std::string(16, c), 1'000, state, 500));
  }
  model.vertices.push_back(pull);
  const std::string frame = render_frame(model, t0, plain_options(60));
  CHECK(count(frame, "\n") == 5); // header, the vertex, 2 downloading, the count
  CHECK(frame.find("=> => sha256:gggggggggggg 500B / 1kB") != std::string::npos);
  CHECK(frame.find("=> => sha256:hhhhhhhhhhhh 500B / 1kB") != std::string::npos);
  CHECK(frame.find("=> => 6 other layers: 3 done, 3 already in the store\n") != std::string::npos);
}

TEST_CASE("tty pull feeds the live view from the pull's reports", "[cli]") {
  MemoryFile out;
  REQUIRE(out.file != nullptr);
  auto now = t0;
  TtyProgress::Options options;
  options.clock = [&now] { return now; };
  options.width = 60;
  options.height = 24;
  options.color = false;
  options.title = "Pulling";
  TtyProgress view(out.file, options);
  {
    TtyPull pull(view, "pull example.com/app:1");
    CHECK(view.redraws() == 1);
    pull.resolved(registry::Reference{}, oci::Digest{}, 2, 3'000'000);
    pull.layer_present(blob('a', 1'000'000));
    pull.layer_started(blob('b', 2'000'000));
    CHECK(view.redraws() == 4); // every state change draws
    now += 10ms;
    pull.layer_progress(blob('b', 2'000'000), 100'000);
    CHECK(view.redraws() == 4); // byte counts at most every 100 ms
    now += 490ms;
    pull.layer_progress(blob('b', 2'000'000), 1'000'000);
    CHECK(view.redraws() == 5);
    CHECK(out.text().find("=> => sha256:bbbbbbbbbbbb 1MB / 2MB 2MB/s") != std::string::npos);
    now += 500ms;
    pull.layer_done(blob('b', 2'000'000));
    pull.end(true);
    pull.end(false); // idempotent
  }
  view.finish();
  const std::string text = out.text();
  CHECK(text.find("[+] Pulling 1.0s (1/1) FINISHED\n") != std::string::npos);
  CHECK(text.find("=> pull example.com/app:1  2MB downloaded") != std::string::npos);
  CHECK(text.find("ERROR") == std::string::npos);

  // A pull that is not ended (its error went up) shows as failed.
  MemoryFile failed_out;
  TtyProgress failed_view(failed_out.file, options);
  { TtyPull pull(failed_view, "pull example.com/missing:1"); }
  failed_view.finish();
  CHECK(failed_out.text().find("=> ERROR pull example.com/missing:1") != std::string::npos);
}

TEST_CASE("tty progress prints a message above the live block and draws the block again", "[cli]") {
  MemoryFile out;
  REQUIRE(out.file != nullptr);
  TtyProgress::Options options;
  options.clock = [] { return t0; };
  options.width = 60;
  options.height = 24;
  options.color = false;
  TtyProgress progress(out.file, options);
  progress.started(1, "[1/1] STEP 2/2: RUN make");
  const std::string before = out.text();
  progress.message("retrying GET /v2/app/blobs/sha256:abc after HTTP 503 (attempt 2 of 5)");
  const std::string after = out.text().substr(before.size());
  // Up over the two lines of the block, cleared, the message, then the block below it.
  const std::string expected_start = "\x1b[2A\r\x1b[Jretrying GET /v2/app/blobs/sha256:abc after "
                                     "HTTP 503 (attempt 2 of 5)\n";
  REQUIRE(after.size() > expected_start.size());
  CHECK(after.substr(0, expected_start.size()) == expected_start);
  CHECK(after.find("[+] Building", expected_start.size()) != std::string::npos);
  CHECK(after.find("STEP 2/2: RUN make", expected_start.size()) != std::string::npos);
  // The next draw moves up over the block drawn after the message, not over the message.
  progress.done(1, std::chrono::milliseconds(5));
  const std::string last = out.text().substr(before.size() + after.size());
  CHECK(last.rfind("\x1b[2A", 0) == 0);
}
