/* version.h - the version of dimd: the binary, `GET /v1/version` and openapi.yaml's info. */
#ifndef DIMD_API_VERSION_H
#define DIMD_API_VERSION_H

#define DIMD_VERSION "0.1.0"

#endif
