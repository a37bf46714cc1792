// Runs a pull's downloads or a push's uploads on a few threads (private to src/registry).
#pragma once

#include <minibuild/base/error.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace minibuild::registry {

/// Calls task(i) for every i in [0, count) on up to `workers` threads, each taking the next
/// index when it is done. The first error stops the others from starting new tasks and calls
/// `on_error` once (the caller cancels running transfers there); it is returned after every
/// thread has finished. `context(i)` names task i in that error ("layer sha256:…"). If fewer
/// threads than asked can be started, those that did share the work.
inline Result<void> run_parallel(std::size_t count, std::size_t workers,
                                 const std::function<Result<void>(std::size_t)>& task,
                                 const std::function<std::string(std::size_t)>& context,
                                 const std::function<void()>& on_error) {
  workers = std::clamp<std::size_t>(workers, 1, std::max<std::size_t>(count, 1));
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex error_mutex;
  std::optional<Error> first_error;
  const auto record = [&](Error error) {
    {
      std::lock_guard lock(error_mutex);
      if (first_error) {
        return;
      }
      first_error = std::move(error);
    }
    stop = true;
    on_error();
  };
  const auto work = [&] {
    for (;;) {
      const std::size_t index = next.fetch_add(1);
      if (index >= count || stop.load()) {
        return;
      }
      Result<void> done = [&]() -> Result<void> {
        try {
          return task(index);
        } catch (const std::exception& exception) {
          // Out of memory, or no thread for a transfer: nothing to recover, but the other
          // workers must still be stopped and joined.
          return fail(Code::internal, exception.what());
        }
      }();
      if (!done) {
        record(std::move(done).error().wrap(context(index)));
        return;
      }
    }
  };

  std::vector<std::thread> threads;
  threads.reserve(workers);
  for (std::size_t i = 0; i < workers; ++i) {
    try {
      threads.emplace_back(work);
    } catch (const std::system_error& error) {
      if (threads.empty()) {
        record(Error(Code::internal, std::string("start a worker thread: ") + error.what()));
      }
      break;
    }
  }
  for (auto& thread : threads) {
    thread.join();
  }
  if (first_error) {
    return fail(std::move(*first_error));
  }
  return {};
}

} // namespace minibuild::registry
