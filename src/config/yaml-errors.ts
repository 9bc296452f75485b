// moved: import from '../core/yaml.ts' (shim kept while the issue 9 branches merge; delete after).
export {
  describeIssue,
  formatPath,
  invalidConfig,
  locate,
  locatedAt,
  MAX_YAML_FILE_BYTES,
  parseYaml,
  readYamlFile,
  show,
  validateYaml,
} from '../core/yaml.ts';
export type { IssueOverride, Located, YamlSource } from '../core/yaml.ts';
