/* exec.c — placeholder */
#include "internal.h"
