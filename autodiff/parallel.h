// Independent tasks on the OpenMP threads, for work that is single-threaded inside (a libsvm solve, an eigenvalue
// problem). It does not split any one task; results stay each task's own, so they do not depend on the thread count.
#pragma once

#include <cstdint>
#include <exception>
#include <vector>

namespace ks {

// work(k) for every k in [0, count), one task at a time per thread. An exception cannot leave an OpenMP region, so each
// task's is kept and the first rethrown once all tasks have finished.
template <class Work>
void parallel_tasks(int64_t count, const Work& work) {
  std::vector<std::exception_ptr> errors(static_cast<size_t>(count));
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t k = 0; k < count; ++k) {
    try {
      work(k);
    } catch (...) {
      errors[static_cast<size_t>(k)] = std::current_exception();
    }
  }
  for (const std::exception_ptr& error : errors)
    if (error) std::rethrow_exception(error);
}

}  // namespace ks
