# Cross-compiling for ARM64 on Debian (g++-aarch64-linux-gnu, and the arm64 -dev packages with dpkg's multiarch), for the
# portable build's golden-digest test under qemu-aarch64. Header-only dependencies come from /usr/include as usual.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)
