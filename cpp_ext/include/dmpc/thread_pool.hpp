/// @file thread_pool.hpp
/// @brief A small persistent thread pool for data-parallel loops (rollouts, LQ approximations).
///
/// parallel_for(n, fn) calls fn(i, worker) for i in [0, n) and blocks until all are done; the
/// worker index in [0, num_threads()) selects per-worker Data so that no two threads share
/// buffers. Work is split in contiguous static chunks, so the assignment i -> worker is a pure
/// function of (n, num_threads): results that depend only on i are thread-count independent.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dmpc {

class ThreadPool {
 public:
  /// @param[in] num_threads total workers including the calling thread (>= 1)
  explicit ThreadPool(int num_threads = 1);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  /// @brief Run fn(i, worker) for i in [0, n); the caller acts as worker 0. Rethrows the first
  ///        exception raised by any worker after all workers finished.
  void parallel_for(int n, const std::function<void(int, int)>& fn);

 private:
  void worker_loop(int worker);
  void run_chunk(int worker);

  int num_threads_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable cv_start_, cv_done_;
  const std::function<void(int, int)>* job_ = nullptr;
  int job_n_ = 0;
  long generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace dmpc
