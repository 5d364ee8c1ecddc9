// SPDX-License-Identifier: MIT
#include "tbstream.h"

const char *tbs_version(void)
{
	return TBS_VERSION;
}
