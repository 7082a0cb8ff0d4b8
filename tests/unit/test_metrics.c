/* placeholder: replaced by the real test */
#include <stdio.h>
int main(void);
int
main(void)
{
	puts("1..1\nnot ok 1 - test_metrics.c is not written yet");
	return 1;
}
