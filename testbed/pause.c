/* The pod sandbox ("pause") process of the test bed's pause:3.2 image: holds the pod's namespaces,
 * reaps zombies (it is PID 1 of the pod when the PID namespace is shared), exits 0 on SIGINT/SIGTERM.
 * Built static: cc -Os -static -s -o pause pause.c */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) { (void)sig; _exit(0); }
static void on_chld(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }

int main(void) {
  struct sigaction t = {.sa_handler = on_term}, c = {.sa_handler = on_chld, .sa_flags = SA_NOCLDSTOP};
  sigaction(SIGINT, &t, NULL);
  sigaction(SIGTERM, &t, NULL);
  sigaction(SIGCHLD, &c, NULL);
  for (;;) pause();
  return 0;
}
