/* retry.c — placeholder */
#include "internal.h"
