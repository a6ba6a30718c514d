# Build hygiene shared by every target of ours: ccache when present, warnings as
# errors on our code only (generated protos and third-party headers are exempt).
find_program(LEFTFOLD_CCACHE ccache)
if(LEFTFOLD_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${LEFTFOLD_CCACHE}")
endif()

# A sanitizer build in a build directory of its own, e.g. -DLEFTFOLD_SANITIZE=address,undefined
# or thread (README, "Two commands"). Our code is instrumented; the Debian libraries are not.
set(LEFTFOLD_SANITIZE "" CACHE STRING "Sanitizers to build with (-fsanitize=...), e.g. thread")
if(LEFTFOLD_SANITIZE)
  add_compile_options(-fsanitize=${LEFTFOLD_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${LEFTFOLD_SANITIZE})
endif()

# RelWithDebInfo defaults to -O2 -g; -g1 keeps link times and disk use small on 2 cores.
set(CMAKE_CXX_FLAGS_RELWITHDEBINFO "-O2 -g1 -DNDEBUG")

function(leftfold_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wno-missing-field-initializers)
endfunction()
