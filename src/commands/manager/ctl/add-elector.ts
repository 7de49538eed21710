import { CtlChangeCommand } from './add-root.js';

export default class CtlAddElector extends CtlChangeCommand {
  static override description = 'Propose the next CTL with an elector certificate added';
  static override examples = ['<%= config.bin %> manager ctl add-elector --dir ./scms --cert elector-4.oer'];
  protected readonly changeKey = 'addElectors' as const;
}
