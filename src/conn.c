/* conn.c — placeholder */
#include "internal.h"
