/* main.c: the mta-sts command-line tool, one binary with subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "lint", cmd_lint, "validate a policy file, _mta-sts TXT record or TLSRPT record" },
	{ "match", cmd_match, "test MX host names against an mx pattern or a policy" },
	{ "generate", cmd_generate, "write a policy file and the TXT record that announces it" },
	{ "publish", cmd_publish, "publish a policy with a correctly managed id" },
	{ "query", cmd_query, "show the policy a sending MTA applies now for a domain" },
	{ "check", cmd_check, "audit a domain's MTA-STS, TLSRPT and MX TLS setup" },
	{ "cache", cmd_cache, "list, show or purge entries of the policy cache" },
};

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: mta-sts COMMAND [OPTIONS] [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(fp, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(fp, "  %-10s %s\n", "help", "show this list, or 'help COMMAND' for one command");
	fprintf(fp, "\n'mta-sts COMMAND --help' describes each command; see mta-sts(1).\n");
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
		if (argc >= 3) {
			for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
				if (strcmp(argv[2], commands[i].name) == 0) {
					char *hargv[] = { argv[2], (char *)"--help", NULL };
					return commands[i].run(2, hargv);
				}
			fprintf(stderr, "mta-sts: unknown command '%s'\n", argv[2]);
			usage(stderr);
			return CLI_USAGE;
		}
		usage(stdout);
		return CLI_OK;
	}
	if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
		printf("mta-sts %s\n", MTASTS_VERSION);
		return CLI_OK;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(name, commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "mta-sts: unknown command '%s'\n\n", name);
	usage(stderr);
	return CLI_USAGE;
}
