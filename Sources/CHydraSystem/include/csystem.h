// glibc calls and constants that Swift's Glibc module hides behind _GNU_SOURCE: for
// HydraSystem/ProcessRunner.swift (spawning) and HydraServers/NotebookServer/ServerSocket.swift
// (opening a socket inode without following links, the listener's credentials).
#include <spawn.h>
#include <sys/types.h>

int hydra_pipe_cloexec(int fds[2]);
int hydra_spawn_add_closefrom(posix_spawn_file_actions_t *actions, int lowest);
int hydra_spawn_add_chdir(posix_spawn_file_actions_t *actions, const char *path);
extern const short hydra_spawn_setsid_flag;
extern const int hydra_open_path_flag;
/// The user and process IDs at the other end of a connected Unix socket (SO_PEERCRED; for a
/// listener: the process that listens); -1 on failure.
int hydra_peer_credentials(int fd, uid_t *uid, pid_t *pid);
