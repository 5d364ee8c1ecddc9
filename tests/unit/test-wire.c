// SPDX-License-Identifier: MIT
#include "../../lib/wire.h"
#include "../tap.h"
int main(void)
{
	return tap_done();
}
