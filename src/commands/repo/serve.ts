import { Args, Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { serveDirectory } from '../../lib/repo/serve.ts';

export default class RepoServe extends BrlCommand<{ url: string; dir: string }> {
  static override summary = 'Serve a repository directory over HTTP (with Range requests) until interrupted.';
  static override description = 'For tests, labs and air-gapped sites: point a host\'s metadata_base_url at <url><variant>/<arch>/ and targets_base_url at <url>targets/. GET and HEAD only; files outside DIR are never served.';
  static override examples = [
    '<%= config.bin %> repo serve build/repos/default',
    '<%= config.bin %> repo serve build/repos/default --port 8080 --host 0.0.0.0',
  ];

  static override args = { dir: Args.string({ description: 'repository directory', required: true }) };
  static override flags = {
    port: Flags.integer({ char: 'p', description: 'TCP port (0 picks a free one)', default: 8080, min: 0, max: 65535 }),
    host: Flags.string({ description: 'address to listen on', default: '127.0.0.1' }),
    quiet: Flags.boolean({ description: 'do not log requests' }),
  };

  async run(): Promise<{ url: string; dir: string }> {
    const { args, flags } = await this.parse(RepoServe);
    const running = await serveDirectory(args.dir, {
      port: flags.port,
      host: flags.host,
      ...(flags.quiet ? {} : { onRequest: ({ method, path, status, bytes }) => this.say(`${method} ${path} ${status} ${bytes}`) }),
    });
    if (this.jsonEnabled()) process.stdout.write(`${JSON.stringify({ url: running.url, dir: args.dir })}\n`);
    this.say(`serving ${args.dir} at ${running.url} (Ctrl-C to stop)`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await running.close();
    return { url: running.url, dir: args.dir };
  }
}
