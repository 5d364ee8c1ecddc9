/* SPDX-License-Identifier: MIT */
/*
 * libtbstream: USB4STREAM streams between two hosts, without manual set-up.
 *
 * Every function returns 0 (or a count) on success and a negative errno on
 * failure, unless its comment says otherwise.  The library keeps no global
 * state; every call that touches the system takes the system root ("/" on a
 * real machine, a tbsim host directory in tests).
 */
#ifndef TBSTREAM_H
#define TBSTREAM_H

#ifdef __cplusplus
extern "C" {
#endif

/**
 * tbs_version() - the library's version
 *
 * Return: a static string such as "0.1.0".
 */
const char *tbs_version(void);

#ifdef __cplusplus
}
#endif

#endif /* TBSTREAM_H */
