-- Provider credentials are sealed by envelope encryption (portcullis-core's `envelope`): the
-- secret is encrypted under its own random data key, and that data key is encrypted ("wrapped")
-- under the master key named by `key_id`. Each of the two encrypted fields carries its own
-- nonce in front of its bytes, so the separate `nonce` column of 0001 has nothing to hold, and
-- the wrapped data key needs a column: the one becomes the other. Nothing wrote credentials
-- before this migration (the credentials API comes with it).
ALTER TABLE provider_credentials RENAME COLUMN nonce TO wrapped_key;
