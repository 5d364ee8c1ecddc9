// SPDX-License-Identifier: MIT
/*
 * tbstream command: the programs it starts (child.h).
 */
#include <errno.h>
#include <signal.h>

#include "child.h"

int child_attr_init(posix_spawnattr_t *at, bool own_group)
{
	static const int handled[] = { SIGPIPE, SIGINT, SIGTERM, SIGHUP,
				       SIGCHLD };
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
	sigset_t none, def;
	unsigned int i;

	sigemptyset(&none);
	sigemptyset(&def);
	for (i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
		sigaddset(&def, handled[i]);
	if (posix_spawnattr_init(at))
		return -ENOMEM;
	posix_spawnattr_setsigmask(at, &none);
	posix_spawnattr_setsigdefault(at, &def);
	if (own_group) {
		posix_spawnattr_setpgroup(at, 0);
		flags |= POSIX_SPAWN_SETPGROUP;
	}
	posix_spawnattr_setflags(at, flags);
	return 0;
}
