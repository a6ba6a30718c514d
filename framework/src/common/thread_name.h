// Names the calling thread, as `top -H`, `perf` and debuggers show it:
//
//   std::thread([] { NameThisThread("lf-commit"); ... });
//
// Linux keeps 15 characters; a longer name is cut. Only for threads leftfold starts: a caller's
// thread keeps its own name.
#pragma once

#include <pthread.h>

#include <string>

#include "absl/strings/string_view.h"

namespace leftfold::internal {

inline void NameThisThread(absl::string_view name) {
  std::string cut(name.substr(0, 15));
  pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace leftfold::internal
