#include "build_summary.hpp"

#include "store_format.hpp"

namespace minibuild::cli {

RecordingProgress::Step* RecordingProgress::find(int id) {
  for (auto& step : m_steps) {
    if (step.id == id) {
      return &step;
    }
  }
  return nullptr;
}

void RecordingProgress::started(int id, std::string_view name) {
  m_steps.push_back({id, std::string(name), {}, false});
  m_next.started(id, name);
}

void RecordingProgress::log(int id, std::string_view line) {
  m_next.log(id, line);
}

void RecordingProgress::done(int id, std::chrono::nanoseconds elapsed) {
  if (Step* step = find(id)) {
    step->elapsed = elapsed;
  }
  m_next.done(id, elapsed);
}

void RecordingProgress::failed(int id, const Error& error) {
  m_next.failed(id, error);
}

void RecordingProgress::cached(int id) {
  if (Step* step = find(id)) {
    step->cached = true;
  }
  m_next.cached(id);
}

void print_build_summary(std::FILE* out, const build::BuildResult& result,
                         const std::vector<RecordingProgress::Step>& steps) {
  std::fprintf(out, "\nimage    %s\nmanifest %s\n", result.config_digest.to_string().c_str(),
               result.manifest_digest.to_string().c_str());
  if (!result.tags.empty()) {
    std::string names;
    for (const auto& tag : result.tags) {
      names += (names.empty() ? "" : ", ") + tag;
    }
    std::fprintf(out, "names    %s\n", names.c_str());
  }
  // History entries that are not empty_layer belong to the layers, in order.
  std::vector<std::string> made_by;
  for (const auto& entry : result.config.history) {
    if (!entry.empty_layer) {
      made_by.push_back(entry.created_by);
    }
  }
  std::vector<std::vector<std::string>> rows = {{"SIZE", "LAYER", "CREATED BY"}};
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < result.manifest.layers.size(); ++i) {
    const auto& layer = result.manifest.layers[i];
    total += static_cast<std::uint64_t>(layer.size);
    const std::string by = i < made_by.size() ? made_by[i] : std::string("(no history)");
    rows.push_back({human_size(static_cast<std::uint64_t>(layer.size)),
                    short_id(layer.digest.to_string()), ellipsis(by, 72)});
  }
  std::fprintf(out, "%s", format_table(rows).c_str());
  std::fprintf(out, "total    %s in %zu layers (compressed)\n", human_size(total).c_str(),
               result.manifest.layers.size());
  for (const auto& step : steps) {
    if (step.name.rfind("exporting", 0) == 0) {
      continue;
    }
    if (step.cached) {
      std::fprintf(out, "  CACHED %s\n", step.name.c_str());
    } else {
      std::fprintf(out, "  %5.1fs %s\n", std::chrono::duration<double>(step.elapsed).count(),
                   step.name.c_str());
    }
  }
}

} // namespace minibuild::cli
