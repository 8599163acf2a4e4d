#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <unistd.h>
#include "csystem.h"

int hydra_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int hydra_spawn_add_closefrom(posix_spawn_file_actions_t *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest);
}

int hydra_spawn_add_chdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

const short hydra_spawn_setsid_flag = POSIX_SPAWN_SETSID;
const int hydra_open_path_flag = O_PATH;

int hydra_peer_credentials(int fd, uid_t *uid, pid_t *pid) {
    struct ucred peer;
    socklen_t length = sizeof peer;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) return -1;
    *uid = peer.uid;
    *pid = peer.pid;
    return 0;
}
