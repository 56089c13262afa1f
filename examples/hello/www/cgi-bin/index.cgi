#!/bin/sh
# busybox httpd runs this for "/" (no index.html); WHO comes from the container's environment.
printf 'Content-Type: text/plain\r\n\r\n'
printf 'Hello %s. Wish you were here.\n' "${WHO:-World}"
