/* pool.c — placeholder */
#include "internal.h"
