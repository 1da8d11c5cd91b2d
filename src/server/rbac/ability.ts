import { createMongoAbility, type MongoAbility } from '@casl/ability';
import type { Action, Permission, Subject } from './permissions.js';

export type AppAbility = MongoAbility<[Action, Subject]>;

export function buildAbility(permissions: readonly Permission[]): AppAbility {
  return createMongoAbility<[Action, Subject]>(
    permissions.map((p) => ({ action: p.action, subject: p.subject })),
  );
}
