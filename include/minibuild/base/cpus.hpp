// How many CPUs this process may run on.
#pragma once

#include <algorithm>
#include <sched.h>
#include <thread>

namespace minibuild {

/// The affinity mask's CPU count, not the machine's: a build limited with taskset or a cgroup
/// cpuset should not start more workers than it may run. At least 1.
inline unsigned usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count > 0) {
      return static_cast<unsigned>(count);
    }
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

} // namespace minibuild
