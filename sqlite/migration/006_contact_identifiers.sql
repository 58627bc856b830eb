-- A contact's row holds its identifiers too (kind US value RS …, in kind and value
-- order, '' for a merged contact), written with its state: reading a contact, which the
-- writer does for every event, is one step where it was two, and start-up reads one
-- table. The identifiers table still finds a contact by identifier; its index by contact
-- served only those reads, and goes.
ALTER TABLE contacts ADD COLUMN identifiers TEXT NOT NULL DEFAULT '';
UPDATE contacts SET identifiers = coalesce((
    SELECT group_concat(kind || char(31) || value, char(30) ORDER BY kind, value)
    FROM identifiers WHERE identifiers.contact_id = contacts.id
), '')
WHERE merged_into IS NULL;
DROP INDEX identifiers_by_contact;
