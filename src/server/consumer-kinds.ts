/**
 * Every consumer of gateways and pools, registered once at assembly. A new consumer is its own
 * feature folder plus one line here: its kind (see consumers/registry.ts, ConsumerKind).
 */
import { accessTargetConsumer } from './access-targets/consumer.js';
import type { ConsumerKind } from './consumers/registry.js';
import { kubernetesAuthConsumer } from './kubernetes-auth/consumer.js';

export const CONSUMER_KINDS: ConsumerKind[] = [kubernetesAuthConsumer, accessTargetConsumer];
