/* sts_smtp.c: placeholder until the module lands. */
#include <mtasts/smtp.h>
