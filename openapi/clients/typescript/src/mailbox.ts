// Reads the mail that the demo server sent to the test SMTP server
// (scripts/smtp.sh: aiosmtpd storing each message as <dir>/<n>.eml, its
// envelope as <dir>/<n>.json), so the flow can follow the emailed links the
// way a user would. Test-only: not part of the client.

import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

import PostalMime from "postal-mime";

const WAIT_MS = 10_000;

export interface Mail {
  to: string[];
  subject: string;
  /** The text/plain part, transfer encoding undone. */
  text: string;
}

export class Mailbox {
  constructor(private readonly dir: string) {}

  /** The number of messages received so far: pass it to `next`. */
  async mark(): Promise<number> {
    return (await this.numbers()).at(-1) ?? 0;
  }

  /**
   * The first message after `mark` to `to` whose subject matches `subject`
   * (other mail, such as a notice of an earlier step, may arrive in
   * between); fails after 10 s (mail leaves the server in the background,
   * after its answer).
   */
  async next(mark: number, to: string, subject: RegExp): Promise<Mail> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      for (const n of (await this.numbers()).filter((n) => n > mark)) {
        const envelope = JSON.parse(await readFile(join(this.dir, `${n}.json`), "utf8")) as {
          rcpt_tos: string[];
        };
        if (!envelope.rcpt_tos.some((r) => r.toLowerCase() === to.toLowerCase())) continue;
        const parsed = await PostalMime.parse(await readFile(join(this.dir, `${n}.eml`)));
        if (!subject.test(parsed.subject ?? "")) continue;
        if (parsed.text === undefined) throw new Error(`mail ${n} to ${to} has no text part`);
        return { to: envelope.rcpt_tos, subject: parsed.subject ?? "", text: parsed.text };
      }
      if (Date.now() > deadline) {
        throw new Error(`no mail to ${to} with a subject like ${subject} within ${WAIT_MS / 1000} s (after message ${mark})`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** The `token` query parameter of the first link in `mail` with one. */
  static token(mail: Mail): string {
    for (const link of mail.text.match(/https?:\/\/\S+/g) ?? []) {
      const token = new URL(link).searchParams.get("token");
      if (token) return token;
    }
    throw new Error(`no link with a token in the mail "${mail.subject}":\n${mail.text}`);
  }

  private async numbers(): Promise<number[]> {
    // <n>.json is written before <n>.eml, both atomically: a listed .eml
    // has its envelope.
    return (await readdir(this.dir))
      .map((name) => /^(\d+)\.eml$/.exec(name)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }
}
