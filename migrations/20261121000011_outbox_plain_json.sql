-- The outbox is a queue: each row is written once, read back once as text by
-- the relay and deleted. As jsonb, every payload was parsed into its binary
-- form on insert and printed back out on read, one of the larger costs of an
-- event under load; json only checks that the text is JSON.
alter table outbox alter column payload type json using payload::json;

-- Each event id is made fresh (uuid v7) by the one insert that writes it, and
-- duplicates are dropped where they can arise: JetStream's duplicate window
-- when the relay publishes a row twice, and the notifier's inbox. The unique
-- index here cost an index entry per event and guarded nothing.
alter table outbox drop constraint outbox_event_id_key;
