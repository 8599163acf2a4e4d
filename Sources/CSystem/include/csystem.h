// glibc calls that Swift's Glibc module hides behind _GNU_SOURCE, for
// HydraKit/System/ProcessRunner.swift only.
#include <spawn.h>

int hydra_pipe_cloexec(int fds[2]);
int hydra_spawn_add_closefrom(posix_spawn_file_actions_t *actions, int lowest);
int hydra_spawn_add_chdir(posix_spawn_file_actions_t *actions, const char *path);
extern const short hydra_spawn_setsid_flag;
