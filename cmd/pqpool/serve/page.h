/* page.h — the status page of GET / and its Content-Security-Policy, built into
 * the binary from page.html by page.cmake (the generated page_html.c). */
#ifndef PQPOOL_CLI_PAGE_H
#define PQPOOL_CLI_PAGE_H

#include <stddef.h>

/* page.html byte for byte, followed by a NUL (not counted in page_html_len). */
extern const unsigned char page_html[];
extern const size_t page_html_len;

/* The value of the page's Content-Security-Policy header: nothing but its own
 * inline script and style (by their SHA-256) and requests to this service. */
extern const char page_csp[];

#endif
