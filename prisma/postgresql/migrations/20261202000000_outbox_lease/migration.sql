-- AlterTable
ALTER TABLE "outbox" ADD COLUMN     "claimed_by" TEXT,
ADD COLUMN     "claimed_until" TIMESTAMP(3);
