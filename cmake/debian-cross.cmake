# debian-cross.cmake - the common part of the cross toolchain files (toolchain-<debian-arch>.cmake set
# KF_DEB_ARCH, KF_TRIPLET, CMAKE_SYSTEM_PROCESSOR and include this).
#
# Debian's way to cross-compile, no sysroot of our own: the cross compiler <triplet>-gcc
# (gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf) and the target's libraries installed as multiarch
# packages beside the host's (`dpkg --add-architecture arm64`, `apt-get install libcurl4-openssl-dev:arm64`),
# i.e. headers in /usr/include/<triplet> and /usr/include, libraries and .pc files in /usr/lib/<triplet>.
# hack/deps.sh --cross installs all of it. Build: cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-arm64.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${KF_TRIPLET}-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE ${KF_TRIPLET})

# pkg-config must read only the target's .pc files (arch-independent ones live in /usr/share/pkgconfig).
# There is no <triplet>-pkg-config wrapper in Debian 12's pkgconf for foreign architectures; the variables
# do the same. Set in the environment so that every pkg_check_modules() call (and re-configure) sees them.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${KF_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")

# Libraries and headers: the target's multiarch directories only; programs (protoc-c) are the host's.
set(CMAKE_FIND_ROOT_PATH /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest runs the target's test programs under qemu-user (Debian's qemu-user-static): the target's dynamic loader
# and libraries are the multiarch ones installed on this host, so no -L prefix is needed.
find_program(KF_QEMU NAMES ${KF_QEMU_NAMES} PATHS /usr/bin NO_CMAKE_FIND_ROOT_PATH)
if(KF_QEMU)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${KF_QEMU})
endif()
