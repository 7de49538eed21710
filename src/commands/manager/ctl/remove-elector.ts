import { CtlChangeCommand } from './add-root.js';

export default class CtlRemoveElector extends CtlChangeCommand {
  static override description = 'Propose the next CTL with an elector removed (the quorum must be met without that elector)';
  static override examples = ['<%= config.bin %> manager ctl remove-elector --dir ./scms --cert elector-3'];
  protected readonly changeKey = 'removeElectors' as const;
}
