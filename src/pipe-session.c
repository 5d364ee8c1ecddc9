// SPDX-License-Identifier: MIT
/*
 * tbstream pipe (verified): the session protocol both ways at once.
 */
#include "pipe.h"

int pipe_session(const struct pipe_args *a, struct tbs_endpoint *ep)
{
	cli_msg("the verified pipe is not available in this build: use --raw");
	return EXIT_FAIL;
}
