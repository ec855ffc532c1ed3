# toolchain-armhf.cmake - cross-compile for linux/arm/v7 (Debian arch armhf: ARMv7, hard float, Thumb-2;
# arm-linux-gnueabihf) with Debian's gcc-arm-linux-gnueabihf and armhf multiarch libraries; tests run under
# qemu-arm. See debian-cross.cmake.
set(KF_DEB_ARCH armhf)
set(KF_TRIPLET arm-linux-gnueabihf)
set(KF_QEMU_NAMES qemu-arm-static qemu-arm)
set(CMAKE_SYSTEM_PROCESSOR armv7l)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
