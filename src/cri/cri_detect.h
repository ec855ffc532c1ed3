/* cri_detect.h - which container runtime a node runs, and where its socket is.
 *
 * Two users: the controller renders delete Jobs for a node it sees only through the API (the runtime from
 * status.nodeInfo.containerRuntimeVersion, upstream's rules), and the node agent, which runs on the node
 * and can look at the filesystem: it takes the first socket that exists among its flag, the node's
 * kubeadm.alpha.kubernetes.io/cri-socket annotation and the runtimes' usual paths. */
#ifndef KF_CRI_DETECT_H
#define KF_CRI_DETECT_H

#include "util/strbuf.h"

#define CRI_NODE_SOCKET_ANNOTATION "kubeadm.alpha.kubernetes.io/cri-socket"

/* Upstream's rules, for a node seen through the API: runtime_version (containerRuntimeVersion, may be
 * NULL) containing "containerd" -> containerd (/run/containerd/containerd.sock), "crio"/"cri-o" -> CRI-O
 * (/var/run/crio/crio.sock), otherwise Docker (/var/run/docker.sock). The socket is flag_socket when set
 * (not for undetected runtimes, as upstream), else annotation (an absolute path; "unix://" stripped),
 * else the default. *runtime is a static string: "containerd", "crio" or "docker"; *socket is malloc'd. */
void cri_runtime_detect(const char *runtime_version, const char *annotation, const char *flag_socket,
			const char **runtime, char **socket);

/* For a process on the node: the runtime socket to talk to. Candidates in order: flag_socket (when set,
 * the only one), annotation, then /run/containerd/containerd.sock, /var/run/containerd/containerd.sock,
 * /run/crio/crio.sock, /var/run/crio/crio.sock, /var/run/docker.sock, /run/docker.sock; each a host path
 * looked up under host_root ("" or NULL = "/"; the DaemonSet mounts the host's directories under /host).
 * "unix://" is stripped; the kubelet's dockershim socket (dockershim.sock) stands for Docker's
 * (/var/run/docker.sock), where the images live. Returns 0 with *socket (malloc'd, host_root included) and
 * *docker (1 when the socket is a Docker Engine API socket: its name ends in docker.sock), or -1 with err
 * naming every path tried. */
int cri_socket_find(const char *host_root, const char *flag_socket, const char *annotation, char **socket,
		    int *docker, struct strbuf *err);

#endif
