-- AlterTable
ALTER TABLE "outbox" ADD COLUMN "claimed_by" TEXT;
ALTER TABLE "outbox" ADD COLUMN "claimed_until" DATETIME;
