# toolchain-arm64.cmake - cross-compile for linux/arm64 (Debian arch arm64, aarch64-linux-gnu) with Debian's
# gcc-aarch64-linux-gnu and arm64 multiarch libraries; tests run under qemu-aarch64. See debian-cross.cmake.
set(KF_DEB_ARCH arm64)
set(KF_TRIPLET aarch64-linux-gnu)
set(KF_QEMU_NAMES qemu-aarch64-static qemu-aarch64)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
