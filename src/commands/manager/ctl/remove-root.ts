import { CtlChangeCommand } from './add-root.js';

export default class CtlRemoveRoot extends CtlChangeCommand {
  static override description = 'Propose the next CTL with a root CA certificate removed (listed in rootCaRemove)';
  static override examples = ['<%= config.bin %> manager ctl remove-root --dir ./scms --cert root-2.oer'];
  protected readonly changeKey = 'removeRoots' as const;
}
