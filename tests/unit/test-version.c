// SPDX-License-Identifier: MIT
#include <string.h>

#include "tbstream.h"
#include "../tap.h"

int main(void)
{
	const char *v = tbs_version();

	ok(v && strlen(v) >= 5, "tbs_version() returns a version string");
	ok(v && strchr(v, '.'), "version has a dot");
	return tap_done();
}
