-- pgrotate migration 5: webhook outbox
--
-- Webhook deliveries are rows of webhook_outbox, written in the transaction of the event they
-- tell (an audit event, through the trigger below) or by the process that raised an alert, and
-- delivered by any pgrotate process. `ordering` (the account, or the target of an account-less
-- event) keeps deliveries in order: only the oldest undelivered row of a (webhook, ordering) may
-- be sent, and a process sends it under a lease. webhook_subscriptions holds, per webhook, the
-- audit event kinds the trigger queues for it; every process writes its config's webhooks there.

CREATE TABLE webhook_subscriptions (
  webhook text PRIMARY KEY,
  events text[] NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_outbox (
  id bigserial PRIMARY KEY,
  webhook text NOT NULL,
  ordering text NOT NULL,
  event text NOT NULL,
  account text,
  target text,
  rotation_id uuid,
  audit_event_id bigint,
  message text,
  detail jsonb NOT NULL DEFAULT '{}'::jsonb,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  lease_until timestamptz,
  delivered_at timestamptz,
  last_error text,
  failing_since timestamptz
);
-- The heads of the queues, and the rows behind them.
CREATE INDEX webhook_outbox_undelivered ON webhook_outbox (webhook, ordering, id) WHERE delivered_at IS NULL;
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX webhook_outbox_delivered ON webhook_outbox (delivered_at) WHERE delivered_at IS NOT NULL;

-- search_path FROM CURRENT: the function resolves names in the state schema whatever the
-- search_path of the session that writes an audit event.
CREATE FUNCTION webhook_outbox_from_audit() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO webhook_outbox (webhook, ordering, event, account, rotation_id, audit_event_id, detail, at)
  SELECT s.webhook, COALESCE(NEW.account, ''), NEW.kind, NEW.account, NEW.rotation_id, NEW.id, NEW.detail, NEW.at
    FROM webhook_subscriptions s WHERE NEW.kind = ANY (s.events)
   ORDER BY s.webhook;
  RETURN NULL;
END $$;

CREATE TRIGGER audit_events_to_webhook_outbox AFTER INSERT ON audit_events
  FOR EACH ROW EXECUTE FUNCTION webhook_outbox_from_audit();
